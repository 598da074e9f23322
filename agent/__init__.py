"""The Caretaker agent: reports what a machine is, does and draws; enforces its power schedule."""

__version__ = "0.1.0"
