"""The citizen's side: the status capability (a link only the citizen holds), the status page
behind it, and the satisfaction rating given from it."""
