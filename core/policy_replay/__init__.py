"""What-if and catch-up for deadline policy changes: replay a candidate deadline plugin over past
complaints (nothing written), and recompute running complaints' deadlines when a bureau asks."""
