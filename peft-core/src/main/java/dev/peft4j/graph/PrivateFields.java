package dev.peft4j.graph;

import java.lang.reflect.Field;

/** The one reflective lookup of the package: a private field of an ND4J class, or null where a release renamed it. */
final class PrivateFields {

  private PrivateFields() {}

  /** {@code owner}'s declared field {@code name}, made accessible; null if it is not there or cannot be opened. */
  static Field field(Class<?> owner, String name) {
    try {
      Field f = owner.getDeclaredField(name);
      f.setAccessible(true);
      return f;
    } catch (ReflectiveOperationException | RuntimeException e) {
      return null;
    }
  }
}
