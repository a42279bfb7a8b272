set terminal pngcairo size 900,480 font "DejaVu Sans,10"
set output '../noisy.png'
set title "Fast host p99 through fetchd, alone and with 200 fetches to a 2 s host\n{/*0.85 median of the rounds, whiskers min–max; log axis: without the limit a fast fetch waits behind the slow host's queue}" enhanced
set ylabel 'p99 latency (ms, log)'
set logscale y
set format y "%g"
set grid ytics
set style data histograms
set style histogram errorbars gap 1 lw 1.5
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -20
unset key
plot 'noisy.dat' using 2:3:4:xtic(1) lc rgb '#4477aa', '' using 0:4:(sprintf('%g', $2)) with labels offset 0,0.8
