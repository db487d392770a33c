"""History the bot shows: sessions, day timelines, daily totals, heatmap, overlap and the day chart."""
