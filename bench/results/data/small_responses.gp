set terminal pngcairo size 900,480 font "DejaVu Sans,10"
set output '../small_responses.png'
set title "/text?n=64, keep-alive, 64 connections: requests/s, median of 3 runs (whiskers: min–max)\n{/*0.85 nginx and the upstream pass the 64 bytes through; fetchd and the Python reference build a full JSON document (873 bytes) for each}" enhanced
set ylabel 'requests/s'
set yrange [0:*]
set format y "%.0f"
set grid ytics
set style data histograms
set style histogram errorbars gap 1 lw 1.5
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -20
unset key
plot 'small_responses.dat' using 2:3:4:xtic(1) lc rgb '#4477aa', '' using 0:4:(sprintf('%.0f', $2)) with labels offset 0,0.8
