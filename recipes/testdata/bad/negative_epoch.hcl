recipe {
  epoch = -1
}

# expect: 2:11: Invalid epoch: epoch is a SOURCE_DATE_EPOCH: seconds since 1970, not negative.
