package org.cocoonjvm.billing.chain;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class TonAddressesTest {
    @Test
    void rawAddress_parses() {
        assertThat(TonAddresses.parse("0:" + "ab".repeat(32)).toRaw()).isEqualTo("0:" + "ab".repeat(32));
    }

    /** ton4j throws java.lang.Error for most of these: each must come out as IllegalArgumentException. */
    @ParameterizedTest
    @ValueSource(strings = {"", " ", "not-an-address", "UQ-test-gateway-wallet", "0:zz", "EQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x:1:2"})
    void malformedAddress_isIllegalArgument_neverAnError(String address) {
        assertThatThrownBy(() -> TonAddresses.parse(address)).isInstanceOf(IllegalArgumentException.class);
    }
}
