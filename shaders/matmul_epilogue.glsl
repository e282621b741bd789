// The matmul kernels' epilogue (ops::MatmulEpilogue): y = W x (+ bias) (+ add) in the final
// write, so a bias or a residual add costs no dispatch of its own (each dispatch is a GPU
// drain at its barrier and host recording, ~5 us on the H100, more than a small matvec).
// The sums are made in the order of the unfused ops (product, + bias, + add), so the result
// is bit-identical to matmul then add. Include after the push constants (p.m).
// BIAS: bias [n_expert][m] (one row for a plain matmul); ADD: add with y's shape.
#if BIAS
layout(binding = BIAS_BINDING) readonly buffer Bias { float bias[]; };
#endif
#if ADD
layout(binding = ADD_BINDING) readonly buffer Add { float add_y[]; };
#endif

// s: the product at y[i], row `row` of matrix e (the expert; 0 without EXPERT).
float epilogue(float s, uint i, uint row, uint e) {
#if BIAS
  s += bias[e * p.m + row];
#endif
#if ADD
  s += add_y[i];
#endif
  return s;
}
