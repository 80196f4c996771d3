kernel "a" {
  image = kernel.b.image
}

kernel "b" {
  image = kernel.a.image
}

# expect: 1:1: Cycle between blocks: These blocks refer to each other in a circle: kernel.a → kernel.b → kernel.a. Break the cycle.
