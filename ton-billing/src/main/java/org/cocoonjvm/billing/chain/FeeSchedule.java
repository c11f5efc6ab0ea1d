package org.cocoonjvm.billing.chain;

import org.ton.ton4j.cell.Cell;
import org.ton.ton4j.cell.CellSlice;

import java.math.BigInteger;
import java.util.Comparator;

/**
 * The chain's fee prices, read from config params at runtime because validators change them (a ~6x
 * cut was voted in 2026): 18 storage, 20/21 gas (masterchain/basechain), 24/25 message forwarding
 * (masterchain/basechain). Prices in config are nanoTON per 2^16 units; every method here rounds
 * up, as the validators do. Billing lives on the basechain, so the methods price basechain work;
 * the masterchain prices are kept for completeness of what was read.
 */
public record FeeSchedule(
        GasPrices basechainGas,
        GasPrices masterchainGas,
        ForwardPrices basechainForward,
        ForwardPrices masterchainForward,
        StoragePrices storage) {

    /** gas_prices / gas_prices_ext, optionally behind gas_flat_pfx. */
    public record GasPrices(
            long flatGasLimit, long flatGasPrice, long gasPrice16, long gasLimit, long gasCredit) {}

    /** msg_forward_prices. */
    public record ForwardPrices(
            long lumpPrice, long bitPrice16, long cellPrice16, int firstFrac16) {}

    /** The newest storage_prices entry: per bit and per cell, per second. */
    public record StoragePrices(long utimeSince, long bitPrice16, long cellPrice16) {}

    public static FeeSchedule read(ChainClient chain) {
        return new FeeSchedule(
                gas(chain.configParam(21)),
                gas(chain.configParam(20)),
                forward(chain.configParam(25)),
                forward(chain.configParam(24)),
                storage(chain.configParam(18)));
    }

    /** What {@code gas} units of computation cost on the basechain. */
    public BigInteger gasFee(long gas) {
        GasPrices g = basechainGas;
        if (gas <= g.flatGasLimit()) return BigInteger.valueOf(g.flatGasPrice());
        return BigInteger.valueOf(g.flatGasPrice())
                .add(
                        ceil16(
                                BigInteger.valueOf(gas - g.flatGasLimit())
                                        .multiply(BigInteger.valueOf(g.gasPrice16()))));
    }

    /**
     * The forwarding fee of a basechain message whose body and state init add {@code bits} and
     * {@code cells} beyond the root cell (a short body inline in the root costs just the lump). The
     * sender pays it out of the value unless the send mode says otherwise.
     */
    public BigInteger forwardFee(long bits, long cells) {
        ForwardPrices f = basechainForward;
        BigInteger variable = priced16(bits, f.bitPrice16(), cells, f.cellPrice16());
        return BigInteger.valueOf(f.lumpPrice()).add(ceil16(variable));
    }

    /**
     * Storage rent for {@code bits} and {@code cells} held for {@code seconds} on the basechain.
     */
    public BigInteger storageFee(long bits, long cells, long seconds) {
        BigInteger perSecond = priced16(bits, storage.bitPrice16(), cells, storage.cellPrice16());
        return ceil16(perSecond.multiply(BigInteger.valueOf(seconds)));
    }

    /** bits × bit price + cells × cell price, still in the config's 1/65536-nanoton units. */
    private static BigInteger priced16(long bits, long bitPrice16, long cells, long cellPrice16) {
        return BigInteger.valueOf(bits)
                .multiply(BigInteger.valueOf(bitPrice16))
                .add(BigInteger.valueOf(cells).multiply(BigInteger.valueOf(cellPrice16)));
    }

    private static BigInteger ceil16(BigInteger x) {
        return x.add(BigInteger.valueOf(0xFFFF)).shiftRight(16);
    }

    static GasPrices gas(Cell param) {
        CellSlice s = CellSlice.beginParse(param);
        long flatLimit = 0;
        long flatPrice = 0;
        int tag = s.loadUint(8).intValue();
        if (tag == 0xd1) {
            flatLimit = s.loadUint(64).longValueExact();
            flatPrice = s.loadUint(64).longValueExact();
            tag = s.loadUint(8).intValue();
        }
        long price = s.loadUint(64).longValueExact();
        long limit = s.loadUint(64).longValueExact();
        if (tag == 0xde) {
            s.loadUint(64); // special_gas_limit: masterchain special accounts only
        } else if (tag != 0xdd) {
            throw new ChainException(
                    "bad_config", "unknown gas prices tag 0x" + Integer.toHexString(tag));
        }
        long credit = s.loadUint(64).longValueExact();
        return new GasPrices(flatLimit, flatPrice, price, limit, credit);
    }

    static ForwardPrices forward(Cell param) {
        CellSlice s = CellSlice.beginParse(param);
        int tag = s.loadUint(8).intValue();
        if (tag != 0xea)
            throw new ChainException(
                    "bad_config", "unknown msg_forward_prices tag 0x" + Integer.toHexString(tag));
        long lump = s.loadUint(64).longValueExact();
        long bit = s.loadUint(64).longValueExact();
        long cell = s.loadUint(64).longValueExact();
        s.loadUint(32); // ihr_price_factor: instant hypercube routing is disabled
        int firstFrac = s.loadUint(16).intValue();
        return new ForwardPrices(lump, bit, cell, firstFrac);
    }

    static StoragePrices storage(Cell param) {
        return CellSlice.beginParse(param)
                .loadDict(32, k -> k.readUint(32), v -> v)
                .elements
                .values()
                .stream()
                .map(
                        v -> {
                            CellSlice s = CellSlice.beginParse((Cell) v);
                            int tag = s.loadUint(8).intValue();
                            if (tag != 0xcc)
                                throw new ChainException(
                                        "bad_config",
                                        "unknown storage_prices tag 0x" + Integer.toHexString(tag));
                            long since = s.loadUint(32).longValueExact();
                            return new StoragePrices(
                                    since,
                                    s.loadUint(64).longValueExact(),
                                    s.loadUint(64).longValueExact());
                        })
                .max(Comparator.comparingLong(StoragePrices::utimeSince))
                .orElseThrow(
                        () ->
                                new ChainException(
                                        "bad_config", "config param 18 holds no storage prices"));
    }
}
