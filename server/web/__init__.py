"""The browser pages: a small HTML shell per page and the bundle built in static/."""
