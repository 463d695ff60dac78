"""What the test suite and bench/ share: the real `footfall` command on a free loopback port, a
webhook receiver on 127.0.0.1, and tenants made as an operator makes them."""
