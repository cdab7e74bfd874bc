package dev.peft4j.bench;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;
import picocli.CommandLine;

/**
 * A picocli converter for an enum option written in lower case ({@code --format jsonl}); a value that is none of the
 * constants is refused listing them: {@code 'xml' is not a format; formats: csv, jsonl}.
 */
abstract class LowerCaseEnum<E extends Enum<E>> implements CommandLine.ITypeConverter<E> {

  private final Class<E> type;
  private final String what;

  /** @param what the option's noun, singular ({@code format}); the list of values is headed by its plural */
  LowerCaseEnum(Class<E> type, String what) {
    this.type = type;
    this.what = what;
  }

  @Override
  public E convert(String value) {
    try {
      return Enum.valueOf(type, value.toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      String values = Arrays.stream(type.getEnumConstants()).map(c -> c.name().toLowerCase(Locale.ROOT))
          .collect(Collectors.joining(", "));
      throw new CommandLine.TypeConversionException("'" + value + "' is not a " + what + "; " + what + "s: " + values);
    }
  }
}
