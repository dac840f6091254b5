"""The ZnO book's project: DFT plan and data, shipped models, artefacts, findings."""
