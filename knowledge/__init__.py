"""Knowledge: storage, importers and the Chinese matcher shared by every channel."""
