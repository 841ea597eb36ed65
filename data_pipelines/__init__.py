"""Building the Spectrum Suite from seeded generators and raw source files."""
