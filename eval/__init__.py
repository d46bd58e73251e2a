"""Pure metrics and the evaluation runs that use them."""
