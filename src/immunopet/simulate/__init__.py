"""The virtual CAR T-cell patient and mouse: anatomy, scanners and scenarios that write real files.

The simulator writes DICOM (and PET-BIDS) through :mod:`immunopet.io`, so everything
downstream is tested through the real ingest path; ground truth travels beside the files.
"""
