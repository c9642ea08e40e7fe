"""Efficacy evaluation (Art. 20-22): periods, runs scored by each node's scoring plugin, rankings within
class, trusted-model candidates (Art. 21), exit proposals and decisions (Art. 22), publication (Art. 23)."""
