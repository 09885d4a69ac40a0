// The frozen-RNN suffix loops of recurrent.py, compiled (kernels.py builds this file on first use).
//
// Same arguments, results and layout as the Python loops in kernels.py, which stay the reference
// and the fallback. Why compiled: at width 128 a step's matmul takes ~35–50 µs, and each further
// small tensor op from Python ~5 µs more, ~8 of them a step. Here a step is the matmul and ONE
// pass over the step's rows that computes the gates, the new state and, when backward will come,
// the step's backward factors, in SIMD registers (ATen's Vectorized<float>: AVX2 where the build
// enables it, plain loops otherwise).
//
// Packed layout (time-major, rows sorted longest first): step t holds rows
// [offset_t, offset_t + sizes[t]); its row p continues row p of step t − 1 (the same item).
// Gates are stored as recurrent.py's `Frozen` stores them: tanh(x) = 2σ(2x) − 1 with the
// tanh-gates' pre-activations doubled; GRU (r, z, n), LSTM forward (i, f, o, g), LSTM backward
// factors in PyTorch's order (i, f, g, o), to multiply PyTorch's W_hh.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

using at::Tensor;
using Vec = at::vec::Vectorized<float>;

namespace {

inline Vec sigmoid(const Vec& x) { return Vec(1.f) / (Vec(1.f) + x.neg().exp()); }

std::vector<int64_t> offsets_of(at::IntArrayRef sizes) {
  std::vector<int64_t> offsets(sizes.size() + 1, 0);
  for (size_t t = 0; t < sizes.size(); ++t) offsets[t + 1] = offsets[t] + sizes[t];
  return offsets;
}

// Calls body(j, count) over the H columns of a row, a vector (or the tail) at a time.
template <typename Body>
inline void columns(int64_t hidden, const Body& body) {
  for (int64_t j = 0; j < hidden; j += Vec::size()) body(j, static_cast<int>(std::min<int64_t>(Vec::size(), hidden - j)));
}

// The rows of a packed step are shared out by parity (row p to thread p mod threads): a row only
// ever continues the same-numbered row of the step before, so each share is an independent
// recurrence, the shares are as even as the rows, and each thread's matmul reads and writes its
// rows in place as a strided matrix (one thread per matmul: ATen runs ops inside a parallel
// region single-threaded). One share per thread beats a threaded matmul per step at these sizes.
template <typename Body>
inline void for_each_share(const Body& body) {
  const int64_t shares = std::max<int64_t>(1, at::get_num_threads());
  at::parallel_for(0, shares, 1, [&](int64_t begin, int64_t end) {
    for (int64_t share = begin; share < end; ++share) body(share, shares);
  });
}

// Rows share, share + shares, … of the `size` rows that start at `begin`.
inline Tensor share_rows(const Tensor& t, int64_t begin, int64_t size, int64_t share, int64_t shares) {
  return t.narrow(0, begin, size).slice(0, share, size, shares);
}

// The loops index raw memory: refuse any tensor or layout they were not written for.
void check_layout(at::IntArrayRef sizes, int64_t first_rows, std::initializer_list<std::pair<const Tensor*, int64_t>> packed) {
  TORCH_CHECK(!sizes.empty() && sizes[0] == first_rows, "suffix loops: step 0 must hold every state row");
  int64_t rows = 0;
  for (size_t t = 0; t < sizes.size(); ++t) {
    TORCH_CHECK(sizes[t] > 0 && (t == 0 || sizes[t] <= sizes[t - 1]), "suffix loops: step sizes must shrink");
    rows += sizes[t];
  }
  for (const auto& [tensor, columns] : packed) {
    TORCH_CHECK(tensor->scalar_type() == at::kFloat && tensor->is_contiguous() && tensor->dim() == 2,
                "suffix loops: float32, contiguous, 2-D tensors only");
    TORCH_CHECK(tensor->size(0) == rows && tensor->size(1) == columns, "suffix loops: a tensor of the wrong shape");
  }
}

inline Vec load(const float* p, int count) { return Vec::loadu(p, count); }
inline void store(const Vec& v, float* p, int count) { v.store(p, count); }

// gh [P, 3H]: i_r + b_r, i_z + b_z, 2 b_n (overwritten); i_n [P, H]: 2 i_n; first [N, H].
// Returns h' of every step [P, H], and when `factors` is set d(gh)/dh' [P, 3H] and z [P, H].
std::tuple<Tensor, Tensor, Tensor> gru_forward(Tensor gh, const Tensor& i_n, const Tensor& first, const Tensor& w_hh_t,
                                               at::IntArrayRef sizes, bool factors) {
  const int64_t hidden = first.size(1), rows = gh.size(0);
  check_layout(sizes, first.size(0), {{&gh, 3 * hidden}, {&i_n, hidden}});
  const auto offsets = offsets_of(sizes);
  Tensor out = at::empty({rows, hidden}, gh.options()), h0 = first.contiguous();
  Tensor d_gh = factors ? at::empty({rows, 3 * hidden}, gh.options()) : Tensor();
  Tensor zs = factors ? at::empty({rows, hidden}, gh.options()) : Tensor();
  float *g_data = gh.data_ptr<float>(), *out_data = out.data_ptr<float>();
  const float* x_data = i_n.data_ptr<float>();
  float *d_data = factors ? d_gh.data_ptr<float>() : nullptr, *z_data = factors ? zs.data_ptr<float>() : nullptr;
  for_each_share([&](int64_t share, int64_t shares) {
    for (size_t t = 0; t < sizes.size(); ++t) {
      const int64_t size = sizes[t], begin = offsets[t];
      Tensor previous = t ? out.narrow(0, offsets[t - 1], size) : h0;
      share_rows(gh, begin, size, share, shares).addmm_(share_rows(previous, 0, size, share, shares), w_hh_t);
      const float* h_data = previous.data_ptr<float>();
      for (int64_t row = share; row < size; row += shares) {
        const int64_t p = begin + row;
        const float *g = g_data + p * 3 * hidden, *x_n = x_data + p * hidden, *h = h_data + row * hidden;
        float* h_new = out_data + p * hidden;
        columns(hidden, [&](int64_t j, int count) {
          const Vec r = sigmoid(load(g + j, count)), z = sigmoid(load(g + hidden + j, count));
          const Vec gh_n = load(g + 2 * hidden + j, count), h_old = load(h + j, count);
          const Vec n = Vec(2.f) * sigmoid(load(x_n + j, count) + r * gh_n) - Vec(1.f);
          store(n + z * (h_old - n), h_new + j, count);  // (1 − z) n + z h
          if (!factors) return;
          float* d = d_data + p * 3 * hidden;
          const Vec through_n = (Vec(1.f) - z) * (Vec(1.f) - n * n);  // dh'/d(pre-activation of n)
          store(Vec(0.5f) * r * (Vec(1.f) - r) * gh_n * through_n, d + j, count);
          store(z * (Vec(1.f) - z) * (h_old - n), d + hidden + j, count);
          store(through_n * r, d + 2 * hidden + j, count);
          store(z, z_data + p * hidden + j, count);
        });
      }
    }
  });
  return {out, d_gh, zs};
}

// grad [P, H]: dh' of every step (the carries are added in place); returns d(first) [N, H].
Tensor gru_backward(Tensor grad, const Tensor& d_gh_dh, const Tensor& zs, const Tensor& w_hh, at::IntArrayRef sizes) {
  const int64_t hidden = grad.size(1);
  check_layout(sizes, sizes.empty() ? 0 : sizes[0], {{&grad, hidden}, {&d_gh_dh, 3 * hidden}, {&zs, hidden}});
  const auto offsets = offsets_of(sizes);
  Tensor d_gh = at::empty({sizes[0], 3 * hidden}, grad.options());
  Tensor first = at::empty({sizes[0], hidden}, grad.options());
  float *grad_data = grad.data_ptr<float>(), *d_data = d_gh.data_ptr<float>();
  const float *f_data = d_gh_dh.data_ptr<float>(), *z_data = zs.data_ptr<float>();
  for_each_share([&](int64_t share, int64_t shares) {
    for (int64_t t = static_cast<int64_t>(sizes.size()) - 1; t >= 0; --t) {
      const int64_t size = sizes[t], begin = offsets[t];
      Tensor previous = t ? grad.narrow(0, offsets[t - 1], size) : first;  // where dh' flows to
      float* into_data = previous.data_ptr<float>();
      for (int64_t row = share; row < size; row += shares) {
        const int64_t p = begin + row;
        const float *dh = grad_data + p * hidden, *f = f_data + p * 3 * hidden, *z = z_data + p * hidden;
        float *d = d_data + row * 3 * hidden, *into = into_data + row * hidden;
        columns(hidden, [&](int64_t j, int count) {
          const Vec g = load(dh + j, count);
          for (int gate = 0; gate < 3; ++gate) store(g * load(f + gate * hidden + j, count), d + gate * hidden + j, count);
          const Vec carry = g * load(z + j, count);  // dh' ⊙ z: straight through to h
          store(t ? load(into + j, count) + carry : carry, into + j, count);
        });
      }
      // … + d(gh) W_hh
      share_rows(previous, 0, size, share, shares).addmm_(share_rows(d_gh, 0, size, share, shares), w_hh);
    }
  });
  return first;
}

// acts [P, 4H]: x W_ihᵀ + both biases in (i, f, o, 2g) order (overwritten); first [N, 2H]: [h; c].
// Returns h' of every step [P, H], and when `factors` is set d(gates)/d(dc or dh) [P, 4H] in
// (i, f, g, o) order, o (1 − tanh²c') [P, H] and f [P, H].
std::tuple<Tensor, Tensor, Tensor, Tensor> lstm_forward(Tensor acts, const Tensor& first, const Tensor& w_hh_t,
                                                        at::IntArrayRef sizes, bool factors) {
  const int64_t hidden = first.size(1) / 2, rows = acts.size(0);
  check_layout(sizes, first.size(0), {{&acts, 4 * hidden}});
  const auto offsets = offsets_of(sizes);
  Tensor out = at::empty({rows, hidden}, acts.options()), cells = at::empty({rows, hidden}, acts.options());
  Tensor d_gates = factors ? at::empty({rows, 4 * hidden}, acts.options()) : Tensor();
  Tensor through_c = factors ? at::empty({rows, hidden}, acts.options()) : Tensor();
  Tensor forget = factors ? at::empty({rows, hidden}, acts.options()) : Tensor();
  Tensor h0 = first.narrow(1, 0, hidden).contiguous(), c0 = first.narrow(1, hidden, hidden).contiguous();
  float *a_data = acts.data_ptr<float>(), *out_data = out.data_ptr<float>(), *cell_data = cells.data_ptr<float>();
  float* d_data = factors ? d_gates.data_ptr<float>() : nullptr;
  float* through_data = factors ? through_c.data_ptr<float>() : nullptr;
  float* forget_data = factors ? forget.data_ptr<float>() : nullptr;
  for_each_share([&](int64_t share, int64_t shares) {
    for (size_t t = 0; t < sizes.size(); ++t) {
      const int64_t size = sizes[t], begin = offsets[t];
      Tensor previous = t ? out.narrow(0, offsets[t - 1], size) : h0;
      const float* c_data = t ? cell_data + offsets[t - 1] * hidden : c0.data_ptr<float>();
      share_rows(acts, begin, size, share, shares).addmm_(share_rows(previous, 0, size, share, shares), w_hh_t);
      for (int64_t row = share; row < size; row += shares) {
        const int64_t p = begin + row;
        const float *a = a_data + p * 4 * hidden, *c_old = c_data + row * hidden;
        float *c_new = cell_data + p * hidden, *h_new = out_data + p * hidden;
        columns(hidden, [&](int64_t j, int count) {
          const Vec i = sigmoid(load(a + j, count)), f = sigmoid(load(a + hidden + j, count));
          const Vec o = sigmoid(load(a + 2 * hidden + j, count));
          const Vec g = Vec(2.f) * sigmoid(load(a + 3 * hidden + j, count)) - Vec(1.f);
          const Vec c_prev = load(c_old + j, count), c = f * c_prev + i * g;
          const Vec tanh_c = Vec(2.f) * sigmoid(Vec(2.f) * c) - Vec(1.f);
          store(c, c_new + j, count);
          store(o * tanh_c, h_new + j, count);
          if (!factors) return;
          float* d = d_data + p * 4 * hidden;
          store(g * i * (Vec(1.f) - i), d + j, count);
          store(c_prev * f * (Vec(1.f) - f), d + hidden + j, count);
          store(i * (Vec(1.f) - g * g), d + 2 * hidden + j, count);
          store(tanh_c * o * (Vec(1.f) - o), d + 3 * hidden + j, count);
          store(o * (Vec(1.f) - tanh_c * tanh_c), through_data + p * hidden + j, count);
          store(f, forget_data + p * hidden + j, count);
        });
      }
    }
  });
  return {out, d_gates, through_c, forget};
}

// grad [P, H]: dh' of every step (the carries are added in place); returns d(first) [N, 2H].
Tensor lstm_backward(Tensor grad, const Tensor& d_gates_dx, const Tensor& through_c, const Tensor& forget,
                     const Tensor& w_hh, at::IntArrayRef sizes) {
  const int64_t hidden = grad.size(1), steps = static_cast<int64_t>(sizes.size());
  check_layout(sizes, sizes.empty() ? 0 : sizes[0],
               {{&grad, hidden}, {&d_gates_dx, 4 * hidden}, {&through_c, hidden}, {&forget, hidden}});
  const auto offsets = offsets_of(sizes);
  Tensor d_gates = at::empty({sizes[0], 4 * hidden}, grad.options());
  Tensor dc = at::empty({sizes[0], hidden}, grad.options());  // the carry into each row's dc
  Tensor first_h = at::zeros({sizes[0], hidden}, grad.options());
  float *grad_data = grad.data_ptr<float>(), *d_data = d_gates.data_ptr<float>(), *dc_data = dc.data_ptr<float>();
  const float *f_data = d_gates_dx.data_ptr<float>(), *through_data = through_c.data_ptr<float>();
  const float* forget_data = forget.data_ptr<float>();
  for_each_share([&](int64_t share, int64_t shares) {
    for (int64_t t = steps - 1; t >= 0; --t) {
      const int64_t size = sizes[t], begin = offsets[t], carried = t + 1 < steps ? sizes[t + 1] : 0;
      for (int64_t row = share; row < size; row += shares) {
        const int64_t p = begin + row;
        const float *dh = grad_data + p * hidden, *f = f_data + p * 4 * hidden;
        const float *through = through_data + p * hidden, *keep = forget_data + p * hidden;
        float *d = d_data + row * 4 * hidden, *carry = dc_data + row * hidden;
        columns(hidden, [&](int64_t j, int count) {
          const Vec g = load(dh + j, count);
          const Vec c = g * load(through + j, count) + (row < carried ? load(carry + j, count) : Vec(0.f));
          for (int gate = 0; gate < 3; ++gate)  // i, f, g are driven by dc
            store(c * load(f + gate * hidden + j, count), d + gate * hidden + j, count);
          store(g * load(f + 3 * hidden + j, count), d + 3 * hidden + j, count);  // o by dh
          store(c * load(keep + j, count), carry + j, count);  // dc of the step before
        });
      }
      Tensor into = t ? grad.narrow(0, offsets[t - 1], size) : first_h;  // dh_prev += d(gates) W_hh
      share_rows(into, 0, size, share, shares).addmm_(share_rows(d_gates, 0, size, share, shares), w_hh);
    }
  });
  return at::cat({first_h, dc}, 1);
}

}  // namespace

TORCH_LIBRARY(mas_frozen_kernels, m) {
  m.def("gru_forward(Tensor gh, Tensor i_n, Tensor first, Tensor w_hh_t, int[] sizes, bool factors) -> (Tensor, Tensor, Tensor)");
  m.def("gru_backward(Tensor grad, Tensor factors, Tensor z, Tensor w_hh, int[] sizes) -> Tensor");
  m.def("lstm_forward(Tensor acts, Tensor first, Tensor w_hh_t, int[] sizes, bool factors) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def("lstm_backward(Tensor grad, Tensor factors, Tensor through_c, Tensor forget, Tensor w_hh, int[] sizes) -> Tensor");
}

TORCH_LIBRARY_IMPL(mas_frozen_kernels, CPU, m) {
  m.impl("gru_forward", gru_forward);
  m.impl("gru_backward", gru_backward);
  m.impl("lstm_forward", lstm_forward);
  m.impl("lstm_backward", lstm_backward);
}
