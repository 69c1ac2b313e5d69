"""bctrain: BinaryConnect training (Courbariaux, Bengio, David, NIPS 2015, arXiv:1511.00363)."""
