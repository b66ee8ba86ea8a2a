"""What the tests share: vectors, clocks, fakes, layers and real servers."""
