"""Simulator-independent models of the RTL units, shared by the Amaranth tests (tests/rtl)
and the cocotb testbenches (tests/cocotb; their runner puts the repository root on the
path). Per unit: the beat codec, the golden result, the expected cycles, the stimulus
generators, and the input monitor and scoreboard logic (docs/verification.md)."""
