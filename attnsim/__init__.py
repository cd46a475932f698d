"""attnsim: predict, run and validate decode-attention partitionings (FA2, FlashDecoding, stream-K)."""

__version__ = "0.1.0"
