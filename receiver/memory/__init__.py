"""The receiver process's memory: allocator settings made at start and heap trimming after commits."""
