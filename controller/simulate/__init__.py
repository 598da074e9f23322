"""Virtual agents on the real protocol, for the demo and for load tests."""
