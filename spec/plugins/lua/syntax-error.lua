return {
  name = "syntax-error",
  access = function( end,
}
