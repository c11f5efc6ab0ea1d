package org.cocoonjvm.attest.quote;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Skips a test class or method where the checkout lacks the shared attestation fixtures, before any
 * of its set-up runs. For tests that read them where {@link Fixtures#dir()}'s assumption cannot
 * skip: in set-up (whose tear-down would then fail), in argument sources, or under code that wraps
 * the assumption's exception in its own.
 */
@Target({ElementType.TYPE, ElementType.METHOD})
@Retention(RetentionPolicy.RUNTIME)
@ExtendWith(Fixtures.Present.class)
public @interface NeedsFixtures {}
