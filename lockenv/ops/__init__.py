"""The use cases (`lock`, `sync`, `verify`): the only place that composes stages and takes the
project lock. One module per use case; the CLI calls one function of one of them."""
