"""What is not in the document: a JSON event channel per notebook (members, later comments,
runtime and kernel events), and the in-process bus that feeds it."""
