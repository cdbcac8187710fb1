"""Model families of spectrogram-transformers: AST, SSAST and HTS-AT, one folder each."""
