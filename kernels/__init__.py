"""The Tandem worker node: runs Jupyter kernels on behalf of a server it dials into.

The worker and its message types arrive with the kernel gateway; the package exists now so
the layout matches DESIGN.md and type checking covers it from the start.
"""
