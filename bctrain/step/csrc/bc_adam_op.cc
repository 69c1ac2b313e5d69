// bcnn: the TensorFlow op BcAdamUpdate, a CPU kernel around bc_adam_kernel.c.
//
// BcAdamUpdate(w, m, v: resource handles of float32 variables, g: float32 or bfloat16 of the same
// shape, size: float32 scalar) updates w, m and v in place in one pass over memory; attributes
// beta1, one_minus_beta1, beta2, one_minus_beta2, eps, h (clip bound, <= 0: none) and g_div (the
// gradient used is g / g_div). `wb` is a list of 0 or 1 variable handles (float32, bfloat16 or
// float16, the shape of w): given one, the same pass writes w's new binary weights into it,
// +wb_value where w >= 0 and -wb_value elsewhere (bctrain/step/steps.py keeps the next step's product
// weights there). The Python side (bctrain/step/fused_update.py, bctrain/paper/optim.py) builds
// and loads it; there is no GPU kernel (on a GPU the XLA update, which XLA fuses there, is used).
//
// A variable whose buffer is shared with a tensor still alive (a value read earlier) is copied
// first, as TensorFlow's own training ops do: a read never sees a later write.
#include <algorithm>
#include <cstring>
#include <optional>
#include <type_traits>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_var.h"
#include "tensorflow/core/framework/shape_inference.h"

#include "bc_adam_kernel.h"

namespace bcnn {

using namespace tensorflow;  // NOLINT: a kernel file of one op

REGISTER_OP("BcAdamUpdate")
    .Input("w: resource")
    .Input("m: resource")
    .Input("v: resource")
    .Input("g: G")
    .Input("size: float")
    .Input("wb: N * resource")
    .Attr("G: {float, bfloat16}")
    .Attr("N: int >= 0 = 0")
    .Attr("beta1: float")
    .Attr("one_minus_beta1: float")
    .Attr("beta2: float")
    .Attr("one_minus_beta2: float")
    .Attr("eps: float")
    .Attr("h: float = 0.0")
    .Attr("g_div: float = 1.0")
    .Attr("wb_value: float = 1.0")
    .SetIsStateful()
    .SetShapeFn(shape_inference::NoOutputs);

template <typename G>
class BcAdamUpdateOp : public OpKernel {
 public:
  explicit BcAdamUpdateOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("beta1", &p_.b1));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("one_minus_beta1", &p_.c1));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("beta2", &p_.b2));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("one_minus_beta2", &p_.c2));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("eps", &p_.eps));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("h", &p_.h));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("g_div", &p_.g_div));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("wb_value", &p_.wb_value));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("N", &n_wb_));
    OP_REQUIRES(ctx, n_wb_ <= 1, errors::InvalidArgument("BcAdamUpdate: at most one wb variable"));
    OP_REQUIRES(ctx, p_.g_div > 0.0f, errors::InvalidArgument("BcAdamUpdate: g_div must be positive"));
  }

  void Compute(OpKernelContext* ctx) override {
    static const char* kNames[3] = {"w", "m", "v"};
    const int n_vars = 3 + n_wb_;
    core::RefCountPtr<Var> vars[4];
    for (int k = 0; k < n_vars; ++k) {
      OP_REQUIRES_OK(ctx, LookupResource(ctx, HandleFromInput(ctx, k < 3 ? k : 5), &vars[k]));
    }
    Var* order[4] = {vars[0].get(), vars[1].get(), vars[2].get(), n_wb_ ? vars[3].get() : nullptr};
    std::sort(order, order + n_vars);  // one lock order for every caller
    OP_REQUIRES(ctx, std::adjacent_find(order, order + n_vars) == order + n_vars,
                errors::InvalidArgument("BcAdamUpdate: w, m, v (and wb) must be different variables"));
    mutex_lock lock0(*order[0]->mu()), lock1(*order[1]->mu()), lock2(*order[2]->mu());
    std::optional<mutex_lock> lock3;
    if (n_wb_) lock3.emplace(*order[3]->mu());

    const Tensor& g = ctx->input(3);
    const Tensor& size = ctx->input(4);
    OP_REQUIRES(ctx, TensorShapeUtils::IsScalar(size.shape()),
                errors::InvalidArgument("BcAdamUpdate: size must be a scalar"));
    float* data[3];
    for (int k = 0; k < 3; ++k) {
      Tensor* t = vars[k]->tensor();
      OP_REQUIRES(ctx, t->IsInitialized() && t->dtype() == DT_FLOAT,
                  errors::InvalidArgument("BcAdamUpdate: ", kNames[k], " must be an initialised float32 variable"));
      OP_REQUIRES(ctx, t->shape() == g.shape(),
                  errors::InvalidArgument("BcAdamUpdate: ", kNames[k], " has shape ", t->shape().DebugString(),
                                          ", the gradient ", g.shape().DebugString()));
      if (!t->RefCountIsOne()) {  // copy on write
        Tensor copy;
        OP_REQUIRES_OK(ctx, ctx->allocate_temp(DT_FLOAT, t->shape(), &copy));
        std::memcpy(copy.flat<float>().data(), t->flat<float>().data(), t->TotalBytes());
        *t = copy;
      }
      data[k] = t->flat<float>().data();
    }
    void* wb = nullptr;
    int wb_bits = 0;
    bc_adam_params p = p_;
    if (n_wb_) {
      Tensor* t = vars[3]->tensor();
      const DataType dt = t->dtype();
      OP_REQUIRES(ctx, t->IsInitialized() && (dt == DT_FLOAT || dt == DT_BFLOAT16 || dt == DT_HALF),
                  errors::InvalidArgument("BcAdamUpdate: wb must be an initialised float32, bfloat16 or float16 variable"));
      OP_REQUIRES(ctx, t->shape() == g.shape(),
                  errors::InvalidArgument("BcAdamUpdate: wb has shape ", t->shape().DebugString(),
                                          ", the gradient ", g.shape().DebugString()));
      if (!t->RefCountIsOne()) {  // a value read earlier stays as it was; every element is rewritten
        Tensor fresh;
        OP_REQUIRES_OK(ctx, ctx->allocate_temp(dt, t->shape(), &fresh));
        *t = fresh;
      }
      wb = t->data();
      wb_bits = dt == DT_FLOAT ? 32 : 16;
      if (dt == DT_BFLOAT16) p.wb_word = Eigen::numext::bit_cast<uint16_t>(Eigen::bfloat16(p_.wb_value));
      if (dt == DT_HALF) p.wb_word = Eigen::numext::bit_cast<uint16_t>(Eigen::half(p_.wb_value));
    }
    p.size = size.scalar<float>()();
    const G* gp = g.flat<G>().data();
    const int64_t n = g.NumElements();
    const int is_bf16 = std::is_same<G, Eigen::bfloat16>::value;
    constexpr int64_t kBlock = 1 << 14;  // weights per work item (64 KB of each array)
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    auto work = [&](int64_t b0, int64_t b1) {
      const int64_t lo = b0 * kBlock, hi = std::min(n, b1 * kBlock);
      void* wb_lo = wb == nullptr ? nullptr : static_cast<char*>(wb) + lo * (wb_bits / 8);
      bc_adam_update(data[0] + lo, data[1] + lo, data[2] + lo, gp + lo, is_bf16, wb_lo, wb_bits, hi - lo, p);
    };
    ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(
        blocks, thread::ThreadPool::SchedulingParams(thread::ThreadPool::SchedulingStrategy::kFixedBlockSize,
                                                     std::nullopt, 1),
        work);
  }

 private:
  bc_adam_params p_ = {};
  int n_wb_ = 0;
};

REGISTER_KERNEL_BUILDER(Name("BcAdamUpdate").Device(DEVICE_CPU).TypeConstraint<float>("G"),
                        BcAdamUpdateOp<float>);
REGISTER_KERNEL_BUILDER(Name("BcAdamUpdate").Device(DEVICE_CPU).TypeConstraint<Eigen::bfloat16>("G"),
                        BcAdamUpdateOp<Eigen::bfloat16>);

}  // namespace bcnn
