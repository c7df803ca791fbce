"""Live events of a run: published by the tasks, replayed and followed by websocket and SSE
viewers with no gap and no duplicate."""
