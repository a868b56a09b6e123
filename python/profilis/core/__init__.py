"""The classic Profilis API's core: ``AsyncCollector`` (the ring and its
reader sidecar), ``Emitter`` (events) and ``StatsStore`` (statistics),
thin layers over the native module and ``profilis-reader``."""
