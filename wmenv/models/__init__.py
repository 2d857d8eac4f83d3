"""World-model families; each subpackage registers itself with wmenv.registry."""
