// A signed 8 x 8 multiplier in ECP5 fabric whose partial-product ANDs ride in the carry
// chain's own LUTs (Yosys techmap file of rtl/fpga/lut_multipliers.py).
//
// p = sum_{i<7} (b_i ? a : 0) * 2^i - (b_7 ? a : 0) * 2^7. The eight rows pair up into four
// 9-bit sums s_k = r_{2k} + 2 r_{2k+1} (the last r_6 - 2 r_7). Each bit of a pair sum is one
// half of a CCU2C whose LUT4 computes the propagate (a_j & b_lo) ^ (a_j' & b_hi) from the
// operand bits themselves. The CCU2C's generate is the LUT2 of its A and B inputs with
// INIT[3:0] (the LUT4 at C = D = 0): wired so that A, B carry the term the other one equals
// whenever the propagate is 0, it is that term. The three sums of pairs are plain adders
// (kept apart so that Yosys does not merge them into a gate-level adder tree).
// Cells: 4 x 5 CCU2C, 4 LUT4 for the pair sums' bit 0, and the adders' CCU2C: about 35
// CCU2C and 4 LUT4, against about 160 LUT4, 58 PFUMX and 8 CCU2C for Yosys's booth
// mapping of the same product.

(* techmap_celltype = "$mul" *)
module _80_edgetron_mul8 (A, B, Y);
	parameter A_SIGNED = 0;
	parameter B_SIGNED = 0;
	parameter A_WIDTH = 1;
	parameter B_WIDTH = 1;
	parameter Y_WIDTH = 1;

	input [A_WIDTH-1:0] A;
	input [B_WIDTH-1:0] B;
	output [Y_WIDTH-1:0] Y;

	// Only the int8 x int8 product (its 18-bit sign extension at most); every other
	// multiplier is left to the next mapping.
	localparam FITS = A_SIGNED && B_SIGNED && A_WIDTH == 8 && B_WIDTH == 8 && Y_WIDTH <= 18;
	wire _TECHMAP_FAIL_ = !FITS;

	genvar k, j;
	generate if (FITS) begin : mul
	wire [43:0] q;              // per pair: bit 0, then the chain's ten sum bits
	for (k = 0; k < 4; k = k + 1) begin : pair
		localparam integer LO = 2 * k, HI = 2 * k + 1;
		localparam SUB = (k == 3);          // r_6 - 2 r_7: the top row weighs -2^7
		wire [5:0] c;
		assign c[0] = SUB ? 1'b1 : 1'b0;
		// Chain bit j adds bit j of r_lo >>> 1 (a_{j+1} & b_lo) and of r_hi (a_j & b_hi),
		// both sign-extended from a_7; bits 0..8 are the sum, bit 9 repeats its sign.
		for (j = 0; j < 5; j = j + 1) begin : cell
			localparam integer X0 = (2 * j + 1 > 7) ? 7 : 2 * j + 1;
			localparam integer Y0 = (2 * j > 7) ? 7 : 2 * j;
			localparam integer X1 = (2 * j + 2 > 7) ? 7 : 2 * j + 2;
			localparam integer Y1 = (2 * j + 1 > 7) ? 7 : 2 * j + 1;
			// Add: A, B = a_x, b_lo; C, D = a_y, b_hi; p = (A & B) ^ (C & D), g = A & B.
			// Subtract (x + ~y + 1): A, B = a_y, b_hi; C, D = a_x, b_lo;
			// p = ~((A & B) ^ (C & D)), g = ~(A & B).
			CCU2C #(
				.INIT0(SUB ? 16'h8777 : 16'h7888),
				.INIT1(SUB ? 16'h8777 : 16'h7888),
				.INJECT1_0("NO"),
				.INJECT1_1("NO")
			) ccu (
				.CIN(c[j]),
				.A0(SUB ? A[Y0] : A[X0]), .B0(SUB ? B[HI] : B[LO]),
				.C0(SUB ? A[X0] : A[Y0]), .D0(SUB ? B[LO] : B[HI]),
				.A1(SUB ? A[Y1] : A[X1]), .B1(SUB ? B[HI] : B[LO]),
				.C1(SUB ? A[X1] : A[Y1]), .D1(SUB ? B[LO] : B[HI]),
				.S0(q[11 * k + 2 * j + 1]), .S1(q[11 * k + 2 * j + 2]),
				.COUT(c[j + 1])
			);
		end
		assign q[11 * k] = A[0] & B[LO];
	end

	// Pair sum k, r_{2k} + 2 r_{2k+1}, weighs 4^k.
	wire signed [9:0] s0 = q[9:0];
	wire signed [9:0] s1 = q[20:11];
	wire signed [9:0] s2 = q[31:22];
	wire signed [9:0] s3 = q[42:33];
	(* keep *) wire signed [10:0] h0 = $signed(s0[9:2]) + s1;   // (s0 + 4 s1) >> 2
	(* keep *) wire signed [10:0] h1 = $signed(s2[9:2]) + s3;
	wire signed [12:0] t0 = {h0, s0[1:0]};
	wire signed [12:0] t1 = {h1, s2[1:0]};
	(* keep *) wire signed [13:0] h = $signed(t0[12:4]) + t1;   // (t0 + 16 t1) >> 4
	wire [17:0] t = {h, t0[3:0]};
	assign Y = t[Y_WIDTH-1:0];
	end endgenerate
endmodule
