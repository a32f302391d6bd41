"""Comment threads on cells: anchors that follow the text, replies, resolve, @mentions."""
