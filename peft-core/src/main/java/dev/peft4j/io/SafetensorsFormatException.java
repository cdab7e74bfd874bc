package dev.peft4j.io;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A file is not a valid safetensors file (or not one peft4j can read): its message is {@code "<file>: <problem>"},
 * e.g. {@code model.safetensors: tensor 'a.weight' data_offsets [0, 96] overrun the 64-byte data section}.
 */
public final class SafetensorsFormatException extends IOException {

  SafetensorsFormatException(Path file, String problem) {
    super(file + ": " + problem);
  }

  SafetensorsFormatException(Path file, String problem, Throwable cause) {
    super(file + ": " + problem, cause);
  }
}
