package org.cocoonjvm.billing.chain;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.ton.ton4j.cell.Cell;
import org.ton.ton4j.cell.CellBuilder;

import java.math.BigInteger;

/** Config params as @ton/sandbox 0.41.0 serves them (its mainnet snapshot), parsed and priced. */
class FeeScheduleTest {
    static final String PARAM_18 =
            "te6cckEBAQEAKQAATdBmAAAAAAAAAAAAAAAAgAAAAAAAAPoAAAAAAAAB9AAAAAAAA9CQQJVLVZs=";
    static final String PARAM_20 =
            "te6cckEBAQEATAAAlNEAAAAAAAAAZAAAAAAAD0JA3gAAAAAnEAAAAAAAAAAPQkAAAAAABCwdgAAAAAAAACcQAAAAAAAmJaAAAAAABfXhAAAAAAA7msoAKm2gQw==";
    static final String PARAM_21 =
            "te6cckEBAQEATAAAlNEAAAAAAAAAZAAAAAAAAJxA3gAAAAABkAAAAAAAAAAPQkAAAAAAAA9CQAAAAAAAACcQAAAAAACYloAAAAAABfXhAAAAAAA7msoAGR7wcQ==";
    static final String PARAM_24 =
            "te6cckEBAQEAIwAAQuoAAAAAAJiWgAAAAAAnEAAAAAAAD0JAAAAAAYAAVVVVVX2jQy8=";
    static final String PARAM_25 =
            "te6cckEBAQEAIwAAQuoAAAAAAAYagAAAAAABkAAAAAAAAJxAAAAAAYAAVVVVVXYlR3Q=";

    static FeeSchedule sandboxFees() {
        return new FeeSchedule(
                FeeSchedule.gas(cell(PARAM_21)),
                FeeSchedule.gas(cell(PARAM_20)),
                FeeSchedule.forward(cell(PARAM_25)),
                FeeSchedule.forward(cell(PARAM_24)),
                FeeSchedule.storage(cell(PARAM_18)));
    }

    private static Cell cell(String base64) {
        return Cell.fromBocBase64(base64);
    }

    @Test
    void parsesTheBasechainPricesOfTheMainnetSnapshot() {
        FeeSchedule fees = sandboxFees();
        assertThat(fees.basechainGas())
                .isEqualTo(new FeeSchedule.GasPrices(100, 40_000, 400L << 16, 1_000_000, 10_000));
        assertThat(fees.masterchainGas().gasPrice16()).isEqualTo(10_000L << 16);
        assertThat(fees.basechainForward())
                .isEqualTo(
                        new FeeSchedule.ForwardPrices(400_000, 400L << 16, 40_000L << 16, 0x5555));
        assertThat(fees.masterchainForward().lumpPrice()).isEqualTo(10_000_000);
        assertThat(fees.storage().bitPrice16()).isEqualTo(1);
        assertThat(fees.storage().cellPrice16()).isEqualTo(500);
    }

    @Test
    void gasIsFlatUpToTheFlatLimitThenPerUnit() {
        FeeSchedule fees = sandboxFees();
        assertThat(fees.gasFee(0)).isEqualTo(BigInteger.valueOf(40_000));
        assertThat(fees.gasFee(100)).isEqualTo(BigInteger.valueOf(40_000));
        // init_channel as measured: 9,454 gas = 40,000 + 9,354 * 400.
        assertThat(fees.gasFee(9_454)).isEqualTo(BigInteger.valueOf(3_781_600));
    }

    @Test
    void forwardingIsTheLumpPlusBitsAndCellsBeyondTheRoot() {
        FeeSchedule fees = sandboxFees();
        assertThat(fees.forwardFee(0, 0)).isEqualTo(BigInteger.valueOf(400_000));
        assertThat(fees.forwardFee(1_023, 1))
                .isEqualTo(BigInteger.valueOf(400_000 + 1_023 * 400 + 40_000));
    }

    @Test
    void storageRoundsUpAFractionOfANanoton() {
        FeeSchedule fees = sandboxFees();
        // 1 bit for 1 second costs 1/65536 nanoTON, billed as 1.
        assertThat(fees.storageFee(1, 0, 1)).isEqualTo(BigInteger.ONE);
        assertThat(fees.storageFee(65_536, 0, 1)).isEqualTo(BigInteger.ONE);
        assertThat(fees.storageFee(0, 65_536, 1)).isEqualTo(BigInteger.valueOf(500));
    }

    @Test
    void channelCostsFollowTheSchedule() {
        ChannelCosts costs = new ChannelCosts(sandboxFees());
        assertThat(costs.payoutForwardFee()).isEqualTo(BigInteger.valueOf(400_000));
        // A close moves less than this to B than it burns: the payout's forwarding plus the close's
        // gas.
        assertThat(costs.dustLimit())
                .isEqualTo(BigInteger.valueOf(400_000 + 40_000 + 14_900 * 400));
        assertThat(costs.excessFee())
                .isEqualTo(
                        sandboxFees()
                                .gasFee(10_000)
                                .add(sandboxFees().gasFee(15_000))
                                .multiply(BigInteger.TWO));
    }

    @Test
    void anUnknownLayoutIsRefusedNotGuessed() {
        Cell bogus =
                CellBuilder.beginCell()
                        .storeUint(0xab, 8)
                        .storeUint(0, 64)
                        .storeUint(0, 64)
                        .storeUint(0, 64)
                        .endCell();
        assertThatThrownBy(() -> FeeSchedule.gas(bogus))
                .isInstanceOfSatisfying(
                        ChainException.class, e -> assertThat(e.code()).isEqualTo("bad_config"))
                .hasMessageContaining("0xab");
        assertThatThrownBy(() -> FeeSchedule.forward(bogus))
                .hasMessageContaining("msg_forward_prices");
    }
}
