"""The estate read model: what /metrics and the console show, with every energy figure asked of ``energy``."""
