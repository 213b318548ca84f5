"""Source-side gap detection: events an emitter numbered and sent that never reached the store."""
