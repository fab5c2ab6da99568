"""The results side: the record store (SQLite), statistics of proportions, seeds, restore/retire, citations."""
