"""Adapters that let other toolkits run r1track trackers unchanged."""
