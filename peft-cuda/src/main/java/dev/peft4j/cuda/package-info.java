/**
 * Backend reporting. Selecting ND4J's CUDA backend, GPU kernels and device placement is the subject of its own
 * issue; until then this module reports which ND4J backend is in use, so callers can log it. It never needs a GPU to
 * build or test.
 */
package dev.peft4j.cuda;
