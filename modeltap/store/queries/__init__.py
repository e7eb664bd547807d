"""The SQL the store sends, built per database: what detectors read, run records and windows,
and the newest values a scrape exports."""
