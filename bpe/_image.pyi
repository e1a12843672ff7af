# Type stubs for the engine-image module (bpe/_image.pyx); stubtest holds them to the module.

#: The format version of the files (bpe.load names the cached files by it).
VERSION: int
