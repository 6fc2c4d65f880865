"""One module per hardware unit: its cycle function, event counts, buffer needs and kernel."""
