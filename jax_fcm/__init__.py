"""jax_fcm: fused depthwise/pointwise convolution kernels for JAX (XLA FFI + CUDA)."""

from jax_fcm._ffi import BUILT_WITH_CUDA
from jax_fcm.activations import ACTIVATION_NAMES
from jax_fcm.conv2d_op import conv2d, conv2d_plan
from jax_fcm.convnext_block_op import convnext_block
from jax_fcm.depthwise_op import depthwise
from jax_fcm import quantization
from jax_fcm.dw_pw_int8_op import dw_pw_int8
from jax_fcm.dw_pw_op import dw_pw
from jax_fcm.layer_norm_mlp_op import layer_norm_mlp
from jax_fcm.mbconv_config import MbconvConfig
from jax_fcm.mbconv_op import mbconv
from jax_fcm.pointwise_op import pointwise, pointwise_plan
from jax_fcm.pw_dw_op import pw_dw
from jax_fcm.pw_pw_int8_op import pw_pw_int8
from jax_fcm.pw_pw_op import pw_pw
from jax_fcm.tiling import TILE_N_CHOICES, DwPwConfig

__version__ = "0.1.0"

__all__ = ["ACTIVATION_NAMES", "BUILT_WITH_CUDA", "TILE_N_CHOICES", "DwPwConfig", "MbconvConfig", "conv2d", "conv2d_plan",
           "convnext_block", "depthwise", "dw_pw", "dw_pw_int8", "layer_norm_mlp",
           "mbconv", "pointwise", "pointwise_plan", "pw_dw", "pw_pw", "pw_pw_int8",
           "quantization"]
