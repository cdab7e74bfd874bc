/**
 * ND4J's CUDA backend for peft4j: {@link dev.peft4j.cuda.Backend} (which backend ND4J runs on, and
 * {@code Backend.require(Backend.CUDA)} failing with what is missing), {@link dev.peft4j.cuda.CudaDevice} (name,
 * memory, compute capability) and {@link dev.peft4j.cuda.CudaSettings} (data type, device memory limit, cuDNN).
 *
 * <p>The artifact {@code dev.peft4j:peft-cuda} brings {@code org.nd4j:nd4j-cuda-11.6:1.0.0-M2.1} and its
 * {@code linux-x86_64} natives (about 600 MB) to the applications that depend on it; the peft4j methods themselves
 * are backend-agnostic and never import this package. Nothing here needs a GPU to build or test; what was run on a
 * GPU, and what was not, is in {@code peft-cuda/README.md}.
 */
package dev.peft4j.cuda;
