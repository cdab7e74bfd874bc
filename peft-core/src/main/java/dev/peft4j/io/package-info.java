/**
 * Tensors in Hugging Face's safetensors format: {@link dev.peft4j.io.SafetensorsFile} reads a file, checking its
 * whole header before it reads any data; {@link dev.peft4j.io.Safetensors#write} writes one atomically.
 * <pre>
 *   bytes [0, 8)        N, the header's length: an unsigned 64-bit little-endian integer
 *   bytes [8, 8 + N)    the header: UTF-8 JSON, possibly padded with trailing spaces
 *                         {"__metadata__": {"format": "pt"},                            optional, string → string
 *                          "fc.weight": {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 24]}, ...}
 *   bytes [8 + N, end)  the data section: each tensor's elements, little-endian in C (row-major) order, at bytes
 *                       [begin, end) counted from the section's start
 * </pre>
 * Element types are listed in {@link dev.peft4j.io.SafetensorsDtype}. A file that breaks the format fails with
 * {@link dev.peft4j.io.SafetensorsFormatException}, whose message names the file and the problem.
 *
 * <p>{@link dev.peft4j.io.AdapterFiles} reads and writes Hugging Face PEFT's adapter directories; its
 * {@link dev.peft4j.io.AdapterFiles#writeAll} replaces a whole directory so that readers see one complete save or a
 * refusal (a {@code peft4j-manifest.json} per adapter directory records each save's files).
 *
 * @see <a href="https://github.com/huggingface/safetensors">huggingface/safetensors</a>
 */
package dev.peft4j.io;
