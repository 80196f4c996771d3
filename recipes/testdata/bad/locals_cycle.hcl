locals {
  a = local.b
  b = local.a
}

# expect: 2:3: Cycle between local values: These local values refer to each other in a circle: local.a → local.b → local.a.
